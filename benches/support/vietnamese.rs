//! Vietnamese sample text shared by the benchmarks: categories, authors, sentences and
//! paragraph content of a chosen size.
#![allow(dead_code)]

pub const CATEGORIES: [[&str; 2]; 12] = [
    ["Tin Tức", "Kinh tế"],
    ["Tin Tức", "Chính trị"],
    ["Tin Tức", "Xã hội"],
    ["Đời sống", "Y tế"],
    ["Đời sống", "Giáo dục"],
    ["Đời sống", "Gia đình"],
    ["Văn hóa", "Lễ hội"],
    ["Văn hóa", "Du lịch"],
    ["Thể thao", "Bóng đá"],
    ["Thể thao", "Điền kinh"],
    ["Nông nghiệp", "Trồng trọt"],
    ["Nông nghiệp", "Chăn nuôi"],
];

pub const AUTHORS: [&str; 20] = [
    "Phương Nhung",
    "Nguyễn Văn An",
    "Trần Thị Bích",
    "Lê Minh Hoàng",
    "Phạm Thu Hà",
    "Hoàng Đức Thắng",
    "Vũ Thị Lan",
    "Đặng Quốc Huy",
    "Bùi Thanh Tùng",
    "Đỗ Mai Anh",
    "Ngô Văn Khải",
    "Dương Thị Hạnh",
    "Lý Quang Vinh",
    "Trịnh Hồng Nhung",
    "Phan Anh Tuấn",
    "Mai Thị Thảo",
    "Tạ Văn Lộc",
    "Chu Thị Ngọc",
    "Lương Đức Minh",
    "Hà Thị Yến",
];

pub const SENTENCES: [&str; 15] = [
    "Sáng nay, Ủy ban nhân dân huyện đã tổ chức hội nghị triển khai kế hoạch phát triển kinh tế - xã hội trong những tháng cuối năm.",
    "Theo báo cáo, tổng giá trị sản xuất nông nghiệp tăng hơn 5% so với cùng kỳ, trong đó chăn nuôi và trồng trọt đều đạt kết quả khả quan.",
    "Nhiều hộ gia đình đã mạnh dạn chuyển đổi cơ cấu cây trồng, áp dụng tiến bộ khoa học kỹ thuật vào sản xuất để nâng cao năng suất.",
    "Công tác chăm sóc sức khỏe ban đầu cho người dân được quan tâm, các trạm y tế xã đều có bác sĩ thường trực.",
    "Ngành giáo dục tiếp tục đổi mới phương pháp dạy và học, tỷ lệ học sinh tốt nghiệp trung học phổ thông đạt trên 98%.",
    "Lễ hội năm nay thu hút hàng nghìn lượt du khách trong và ngoài tỉnh về tham quan, dâng hương và thưởng thức các trò chơi dân gian.",
    "Đại diện lãnh đạo tỉnh đánh giá cao những nỗ lực của cán bộ và nhân dân địa phương trong xây dựng nông thôn mới.",
    "Tuyến đường mới được đầu tư hơn 30 tỷ đồng, giúp việc đi lại và vận chuyển hàng hóa của bà con thuận tiện hơn nhiều.",
    "Các đội bóng đã thi đấu sôi nổi, cống hiến cho khán giả những trận cầu hấp dẫn với tinh thần thể thao cao thượng.",
    "Chính quyền xã khuyến cáo người dân chủ động tiêm phòng đầy đủ cho đàn gia súc, gia cầm để phòng ngừa dịch bệnh.",
    "Nhiều doanh nghiệp nhỏ và vừa đã tham gia chương trình hỗ trợ chuyển đổi số, đưa sản phẩm lên các sàn thương mại điện tử.",
    "Hội Phụ nữ huyện phối hợp tổ chức các lớp dạy nghề miễn phí, tạo việc làm ổn định cho lao động nông thôn.",
    "Mặc dù còn gặp nhiều khó khăn về thời tiết, vụ lúa mùa năm nay vẫn cho năng suất bình quân đạt 58 tạ mỗi héc-ta.",
    "Ban tổ chức đã trao giấy khen cho các tập thể và cá nhân có thành tích xuất sắc trong phong trào thi đua yêu nước.",
    "Thời gian tới, địa phương sẽ tập trung cải thiện môi trường đầu tư, thu hút thêm các dự án công nghiệp và dịch vụ.",
];

/// About `bytes` of HTML in `<p>` paragraphs of three sentences.
pub fn content(seed: usize, bytes: usize) -> String {
    let mut html = String::with_capacity(bytes + 512);
    let mut k = seed.wrapping_mul(7);
    while html.len() < bytes {
        html.push_str("<p>");
        for j in 0..3 {
            if j > 0 {
                html.push(' ');
            }
            let s = SENTENCES[k % SENTENCES.len()];
            if k % 11 == 5 {
                html.push_str("<em>");
                html.push_str(s);
                html.push_str("</em>");
            } else {
                html.push_str(s);
            }
            k += 1;
        }
        html.push_str("</p>\n");
    }
    html
}

pub const TITLES: [&str; 10] = [
    "Đẩy mạnh phát triển kinh tế nông thôn",
    "Khánh thành tuyến đường liên xã",
    "Hội nghị tổng kết công tác năm",
    "Nâng cao chất lượng khám chữa bệnh",
    "Khai mạc lễ hội truyền thống",
    "Học sinh giỏi được tuyên dương",
    "Mô hình trồng rau an toàn cho thu nhập cao",
    "Giải bóng đá thanh niên mở rộng",
    "Tăng cường phòng chống dịch bệnh trên đàn gia súc",
    "Doanh nghiệp nhỏ tìm hướng đi mới",
];
